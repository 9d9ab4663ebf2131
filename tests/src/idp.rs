//! An enterprise identity provider for admin single sign-on tests: panva's certified
//! `oidc-provider` (tests/interop/oidc-provider), started as a Node process.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::AsyncBufReadExt as _;

pub const CLIENT_ID: &str = "countersign-admin";

pub struct TestIdp {
    pub issuer: String,
    pub client_secret: String,
    child: tokio::process::Child,
}

impl TestIdp {
    /// Starts the provider with one client whose redirect URI is `redirect_uri`, and
    /// `accounts` (sub → claims).
    pub async fn start(redirect_uri: &str, accounts: serde_json::Value) -> Self {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop/oidc-provider");
        assert!(
            dir.join("node_modules/oidc-provider").exists(),
            "run `npm ci` in {} first (.ci/run does)",
            dir.display()
        );
        let client_secret = countersign_jose::random_b64url(24);
        let mut child = tokio::process::Command::new("node")
            .arg("op.mjs")
            .args([
                CLIENT_ID,
                &client_secret,
                redirect_uri,
                &accounts.to_string(),
            ])
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        let stdout = child.stdout.take().expect("piped");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let issuer = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.expect("reads") {
                if let Some(issuer) = line.strip_prefix("listening ") {
                    return issuer.to_owned();
                }
            }
            panic!("oidc-provider exited before listening");
        })
        .await
        .expect("oidc-provider listens in time");
        // Keep reading: the provider writes to stdout later, and a closed pipe kills it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            issuer,
            client_secret,
            child,
        }
    }
}

impl Drop for TestIdp {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// A free loopback port, for a server whose URL the IdP must know before it starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}
