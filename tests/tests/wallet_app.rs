#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! The wallet app end to end: the desktop build of `wallet-app` driven through
//! `tauri-driver` and Debian's WebKitWebDriver under Xvfb, against a real server (behind
//! a proxy that can break the server's signature on chosen requests). The owner chooses
//! a passphrase, enrolls from an invitation, sees a CIBA request arrive without reloading,
//! reads the exact vendor, amount and binding message, approves with the passkey and the
//! agent gets a credential whose evidence verifies with this device's key; the same for a
//! denial with a reason; a request whose signature was broken shows an error and no
//! approve control. Each new request also raises a desktop notification (over D-Bus, to a
//! test daemon) that names nothing of it. Screenshots of each screen, desktop and phone size, go to
//! docs/wallet-app/.
//!
//! scripts/test.sh builds the app and installs the drivers, then names them in
//! `CS_WALLET_APP` (the app binary) and `CS_TAURI_DRIVER`.

use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use countersign_jose::{Jwk, UnverifiedJws, thumbprint};
use countersign_shared::approval::ApprovalClaims;
use countersign_tests::tamper::TamperProxy;
use countersign_tests::webdriver::Session;
use countersign_tests::{Agent, Db, TestServer, jwt_claims};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ORDER: &str = r#"[{"type":"purchase_order","vendor":"Acme Industrial Supply","amount":1200,"currency":"USD","quantity":40}]"#;
const WAIT: Duration = Duration::from_secs(20);
const PASSPHRASE: &str = "correct horse battery";

fn required(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: scripts/test.sh builds the wallet app and installs tauri-driver, then sets it")
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `tauri-driver` on a virtual display, with a private D-Bus session whose notification
/// daemon is `tests/browser/notification_daemon.py` (writing what the app shows to
/// `notifications`), in its own process group: dropping it stops the driver,
/// WebKitWebDriver, the app, Xvfb and the bus together.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start(dir: &std::path::Path, notifications: &std::path::Path) -> Self {
        let port = free_port();
        let native = free_port();
        let daemon = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/browser/notification_daemon.py"
        );
        let mut cmd = Command::new("dbus-run-session");
        cmd.args([
            "--",
            "sh",
            "-c",
            r#""$CS_NOTIFY_PYTHON" "$0" "$1" & shift; exec "$@""#,
        ])
        .arg(daemon)
        .arg(notifications)
        .arg("xvfb-run")
        .args(["-a", "-s", "-screen 0 1280x1024x24"])
        .arg(required("CS_TAURI_DRIVER"))
        .args(["--port", &port.to_string()])
        .args(["--native-port", &native.to_string()])
        .env("COUNTERSIGN_WALLET_STATE", dir.join("wallet.sealed"))
        // The app registers its link handler in the owner's XDG directories.
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("CS_NOTIFY_PYTHON", countersign_tests::tools::python())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
        if let Ok(webkit) = std::env::var("CS_WEBKIT_DRIVER") {
            cmd.args(["--native-driver", &webkit]);
        }
        let child = cmd
            .spawn()
            .expect("dbus-run-session, xvfb-run and tauri-driver (scripts/test.sh installs them)");
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// A session on the app, once the driver answers.
    async fn session(&self) -> Session {
        let caps = json!({
            "browserName": "wry",
            "tauri:options": { "application": required("CS_WALLET_APP") },
        });
        let started = std::time::Instant::now();
        loop {
            match Session::start(&self.url, caps.clone()).await {
                Ok(s) => return s,
                Err(e) if started.elapsed() > Duration::from_secs(30) => {
                    panic!("no WebDriver session on the app: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
            }
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: xvfb-run, Xvfb, tauri-driver, WebKitWebDriver, the app.
        // `--`: without it, kill reads the negative group id as an option.
        let _ = Command::new("kill")
            .args(["-s", "TERM", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

/// Screenshots at the desktop window size and at a phone's 390 px, when the suite asks.
struct Shots {
    dir: Option<std::path::PathBuf>,
}

impl Shots {
    async fn take(&self, app: &Session, name: &str) {
        let Some(dir) = &self.dir else { return };
        for (suffix, width, height) in [("desktop", 1024, 768), ("phone", 390, 844)] {
            app.resize(width, height).await.unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
            let png = app.screenshot().await.unwrap();
            std::fs::write(dir.join(format!("{name}-{suffix}.png")), png).unwrap();
        }
        app.resize(420, 860).await.unwrap();
    }
}

/// The started app made itself the handler of `countersign://` links, as GLib (`gio
/// mime`, what GTK desktops and browsers consult) resolves them from the XDG directories.
fn link_handler_registered(xdg: &std::path::Path) {
    let entry =
        std::fs::read_to_string(xdg.join("data/applications/app.countersign.wallet.desktop"))
            .expect("the desktop entry");
    let program = std::fs::canonicalize(required("CS_WALLET_APP")).unwrap();
    assert!(
        entry.contains(&format!("Exec=\"{}\" %u", program.display())),
        "{entry}"
    );
    let resolved = Command::new("gio")
        .args(["mime", "x-scheme-handler/countersign"])
        .env("XDG_DATA_HOME", xdg.join("data"))
        .env("XDG_CONFIG_HOME", xdg.join("config"))
        .output()
        .expect("gio (libglib2.0-bin)");
    let said = String::from_utf8_lossy(&resolved.stdout);
    assert!(
        said.contains("Default application for “x-scheme-handler/countersign”: app.countersign.wallet.desktop")
            || said.contains("Default application for \"x-scheme-handler/countersign\": app.countersign.wallet.desktop"),
        "{said}"
    );
}

/// The first `n` notifications the daemon was asked to show, once there are that many.
async fn notifications_shown(log: &std::path::Path, n: usize) -> Vec<Value> {
    let started = std::time::Instant::now();
    loop {
        let shown: Vec<Value> = std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if shown.len() >= n {
            return shown;
        }
        assert!(
            started.elapsed() < WAIT,
            "{} notification(s) shown, expected {n}: {shown:?}",
            shown.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn ask(s: &TestServer, agent: &Agent, binding: &str) -> String {
    let (status, body) = s
        .bc_authorize(
            agent,
            &[
                ("scope", "openid"),
                ("login_hint", "alice"),
                ("binding_message", binding),
                ("authorization_details", ORDER),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["auth_req_id"].as_str().unwrap().to_owned()
}

/// Opens request `id` from the inbox, where it must have appeared by itself.
async fn open_from_inbox(app: &Session, id: &str) {
    let item = format!("li[data-request-id=\"{id}\"] button");
    app.wait(&item, WAIT).await.unwrap();
    app.click(&item).await.unwrap();
}

/// The device key the server holds for alice's one device.
async fn device_key(s: &TestServer) -> Jwk {
    let devices = s.state().store.devices(Some("alice")).await.unwrap();
    assert_eq!(devices.len(), 1, "one device enrolled");
    serde_json::from_str(&devices[0].key_jwk).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_enrolls_and_decides_in_the_desktop_app() {
    let proxy_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_url = format!("http://{}", proxy_listener.local_addr().unwrap());
    let issuer = proxy_url.clone();
    let s = TestServer::start_with(Db::Sqlite, move |c| c.issuer = Some(issuer)).await;
    let proxy = TamperProxy::start(proxy_listener, &s.url(""));
    s.human("alice").await;
    let agent = s.agent("procurement", "alice", "client_secret_basic").await;
    let invitation = s.invitation("alice").await;

    let dir = tempfile::tempdir().unwrap();
    let notifications = dir.path().join("notifications.jsonl");
    let driver = Driver::start(dir.path(), &notifications);
    let app = driver.session().await;
    link_handler_registered(dir.path());
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let shots = Shots {
        dir: std::env::var_os("CS_WALLET_SHOTS")
            .map(|_| std::path::PathBuf::from(format!("{root}/docs/wallet-app"))),
    };
    if let Some(d) = &shots.dir {
        std::fs::create_dir_all(d).unwrap();
    }

    // First run: choose the passphrase that seals the wallet.
    app.wait("#passphrase", WAIT).await.unwrap();
    // Script errors and unhandled rejections, reported if a step fails.
    app.execute(
        "window.__errors = []; \
         addEventListener('error', e => __errors.push(String(e.message))); \
         addEventListener('unhandledrejection', e => __errors.push('rejected: ' + JSON.stringify(e.reason)));",
        json!([]),
    )
    .await
    .unwrap();
    shots.take(&app, "unlock").await;
    app.type_into("#passphrase", PASSPHRASE).await.unwrap();
    app.type_into("#passphrase-confirm", PASSPHRASE)
        .await
        .unwrap();
    app.click("#unlock").await.unwrap();

    // Enroll: the server and the human are shown before any key exists.
    app.wait("#enroll-uri", WAIT).await.unwrap();
    shots.take(&app, "enroll").await;
    app.type_into("#enroll-uri", &invitation).await.unwrap();
    app.click("#enroll-continue").await.unwrap();
    app.wait_text("#enroll-server", &proxy_url, WAIT)
        .await
        .unwrap();
    app.wait_text("#enroll-subject", "alice", WAIT)
        .await
        .unwrap();
    assert!(
        s.state()
            .store
            .devices(Some("alice"))
            .await
            .unwrap()
            .is_empty(),
        "nothing is enrolled before the owner confirms"
    );
    shots.take(&app, "enroll-preview").await;
    app.click("#enroll-confirm").await.unwrap();
    app.wait("#inbox-empty", WAIT).await.unwrap();
    shots.take(&app, "inbox-empty").await;
    let key = device_key(&s).await;

    // A request arrives over the live channel: no reload, no refresh button.
    let approved = ask(&s, &agent, "W4SCT-7Q").await;
    let item = format!("li[data-request-id=\"{approved}\"]");
    app.wait(&item, WAIT).await.unwrap();
    app.wait_text(&item, "procurement agent", WAIT)
        .await
        .unwrap();
    // The desktop was told too, through its notification daemon, without a word of the
    // unverified request.
    let shown = notifications_shown(&notifications, 1).await;
    assert_eq!(shown[0]["app_name"], "Countersign", "{shown:?}");
    assert_eq!(shown[0]["summary"], "Approval requested", "{shown:?}");
    let text = shown[0].to_string();
    assert!(
        !text.contains("Acme") && !text.contains("W4SCT") && !text.contains("1200"),
        "{text}"
    );
    shots.take(&app, "inbox").await;
    open_from_inbox(&app, &approved).await;
    if let Err(e) = app.wait_text("#request-signed-by", &proxy_url, WAIT).await {
        let errors = app.execute("return window.__errors;", json!([])).await;
        panic!("{e}\nscript errors: {errors:?}");
    }
    let arguments = app.text("#request-arguments").await.unwrap();
    assert!(arguments.contains("Acme Industrial Supply"), "{arguments}");
    assert!(arguments.contains("1,200.00"), "{arguments}");
    assert!(arguments.contains("40"), "{arguments}");
    assert!(
        app.text("#request-binding")
            .await
            .unwrap()
            .contains("W4SCT-7Q")
    );
    shots.take(&app, "request").await;
    app.click("#approve").await.unwrap();
    app.wait_text("#decision-result", "Approved", WAIT)
        .await
        .unwrap();
    shots.take(&app, "approved").await;

    // The agent's credential carries the approval, signed by this device's key.
    s.clock.advance_ms(1_000);
    let (status, tokens) = s.poll(&agent, &approved).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let credential = jwt_claims(tokens["access_token"].as_str().unwrap());
    let evidence = &credential["evidence"][0];
    assert_eq!(evidence["method"], "passkey+device_key");
    assert_eq!(evidence["deviceKeyThumbprint"], thumbprint(&key).unwrap());
    let approval = UnverifiedJws::parse(evidence["approval"].as_str().unwrap()).unwrap();
    approval
        .verify_jwk(&key)
        .expect("the evidence verifies with the device key");
    let claims: ApprovalClaims = approval.insecure_claims().unwrap();
    assert_eq!(claims.request_id, approved);

    // A denial, with the owner's reason.
    let denied = ask(&s, &agent, "K2P9-DENY").await;
    app.click("#request-inbox, #request-back").await.unwrap();
    open_from_inbox(&app, &denied).await;
    app.wait_text("#request-binding", "K2P9-DENY", WAIT)
        .await
        .unwrap();
    // A newer request replaces the notification instead of stacking another.
    let shown = notifications_shown(&notifications, 2).await;
    assert_eq!(shown[1]["replaces_id"], shown[0]["id"], "{shown:?}");
    app.click("#deny").await.unwrap();
    app.type_into("#deny-reason", "I did not order this")
        .await
        .unwrap();
    shots.take(&app, "deny").await;
    app.click("#deny-confirm").await.unwrap();
    app.wait_text("#decision-result", "Denied", WAIT)
        .await
        .unwrap();
    s.clock.advance_ms(1_000);
    let (_, body) = s.poll(&agent, &denied).await;
    assert_eq!(body["error"], "access_denied", "{body}");
    let traced = s
        .state()
        .store
        .recent_audit_events(Some(&denied), 10)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.kind == "request.denied")
        .expect("the denial is traced");
    let detail: Value = serde_json::from_str(&traced.detail).unwrap();
    assert_eq!(detail["reason"], "I did not order this");

    // A request whose server signature was broken on the way: an error, nothing of the
    // request, and no way to approve it.
    let forged = ask(&s, &agent, "FORGED-1").await;
    proxy.break_signature_of(&forged);
    app.click("#request-inbox, #request-back").await.unwrap();
    open_from_inbox(&app, &forged).await;
    app.wait_text("#request-error", "could not be verified", WAIT)
        .await
        .unwrap();
    assert!(
        app.find("#approve").await.unwrap().is_none(),
        "no approve control"
    );
    let page = app.text("body").await.unwrap();
    assert!(
        !page.contains("FORGED-1") && !page.contains("Acme"),
        "{page}"
    );
    shots.take(&app, "unverified").await;
    let request = s.auth_request(&forged).await;
    assert_eq!(request.decided_at, None, "nothing was decided");

    // History: both decisions, each with its signed evidence.
    app.click("#nav-history").await.unwrap();
    let history = app
        .wait_text("#history", "I did not order this", WAIT)
        .await
        .unwrap();
    assert!(
        history.contains("Procurement") || history.contains("procurement"),
        "{history}"
    );
    shots.take(&app, "history").await;
    app.click("#nav-settings").await.unwrap();
    app.wait_text("#settings-subject", "alice", WAIT)
        .await
        .unwrap();
    shots.take(&app, "settings").await;

    app.quit().await;
    drop(driver);
    s.stop().await;
}
