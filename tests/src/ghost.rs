//! The would-be ghost agent of the offboarding tests: an agent holding a live,
//! DPoP-bound credential approved by its owner and a pending request, and a tool's
//! verifier whose status TTL is 1 s with the credential's status list already cached.

use std::sync::Arc;

use countersign_jose::SigningKeyPair;
use countersign_verifier::status::HttpStatusSource;
use countersign_verifier::{Presentation, Rejection, Verdict, Verifier};
use serde_json::json;

use crate::{Agent, TestServer};

/// The $120 order the credentials approve.
pub const ORDER: &str =
    r#"[{"type":"purchase_order","vendor":"Acme","amount":120,"currency":"USD"}]"#;
const TOOL_URL: &str = "https://tools.example.com/orders";

/// A tool's verifier that trusts `s` and caches status lists for at most a second.
pub async fn tool_verifier(s: &TestServer) -> Arc<Verifier> {
    Arc::new(
        Verifier::builder()
            .trust_issuer(s.issuer(), &s.jwks().await)
            .status_source(HttpStatusSource::default())
            .status_ttl(std::time::Duration::from_secs(1))
            .build(),
    )
}

/// The tool's check of a $120 order call with `credential` at `now` (Unix seconds), run
/// off the runtime that serves the status list.
pub async fn tool_call(
    v: &Arc<Verifier>,
    credential: &str,
    dpop: &SigningKeyPair,
    now: i64,
) -> Result<Verdict, Rejection> {
    let proof = crate::resource_proof(dpop, "POST", TOOL_URL, credential, now);
    let (v, credential) = (v.clone(), credential.to_owned());
    tokio::task::spawn_blocking(move || {
        let arguments = json!({"vendor": "Acme", "amount": 120, "currency": "USD"});
        v.verify_at(
            &Presentation {
                token: &credential,
                dpop_proof: Some(&proof),
                method: "POST",
                url: TOOL_URL,
                action: Some("purchase_order"),
                arguments: Some(&arguments),
            },
            now,
        )
    })
    .await
    .expect("verifier task")
}

pub struct Ghost {
    pub agent: Agent,
    pub credential: String,
    pub pending: String,
    dpop: SigningKeyPair,
    verifier: Arc<Verifier>,
}

/// The policy the ghosts' credentials were approved under: like the default (every
/// action needs the user's approval), but a credential may be used any number of times
/// within its validity, so the tests can present it before and after offboarding.
pub const STANDING_POLICY: &str = r#"@id("standing-approval") @step_up @max_uses("unlimited")
permit (principal, action, resource);"#;

impl Ghost {
    /// Agent `client_id` of `owner` (registered), with its credential and pending request.
    pub async fn new(s: &TestServer, client_id: &str, owner: &str) -> Self {
        if s.state().policy.active().source != STANDING_POLICY {
            s.install_policy(STANDING_POLICY).await;
        }
        let agent = s.agent(client_id, owner, "private_key_jwt").await;
        let dpop = SigningKeyPair::generate();
        let tokens = s
            .approved_tokens(
                &agent,
                owner,
                &[("authorization_details", ORDER)],
                Some(&dpop),
            )
            .await;
        let verifier = tool_verifier(s).await;
        let g = Self {
            pending: s.start_request(&agent, owner).await,
            credential: tokens["access_token"]
                .as_str()
                .expect("credential")
                .to_owned(),
            agent,
            dpop,
            verifier,
        };
        assert!(
            g.call(s.now_s()).await.is_ok(),
            "valid, and its status list cached"
        );
        g
    }

    /// The tool's check of a $120 order call with the credential at `now`.
    pub async fn call(&self, now: i64) -> Result<(), Rejection> {
        tool_call(&self.verifier, &self.credential, &self.dpop, now)
            .await
            .map(|_| ())
    }

    /// Once the verifier's 1 s status TTL has passed since the offboarding answer, the
    /// credential is dead, the pending request is over and the agent refused.
    pub async fn assert_dead(&self, s: &TestServer, owner: &str) {
        assert_eq!(self.call(s.now_s() + 2).await, Err(Rejection::Revoked));
        let (_, body) = s.poll(&self.agent, &self.pending).await;
        assert_eq!(body["error"], "unauthorized_client", "{body}");
        let (_, body) = s
            .bc_authorize(&self.agent, &[("scope", "openid"), ("login_hint", owner)])
            .await;
        assert_eq!(body["error"], "unauthorized_client", "{body}");
        let request = s.auth_request(&self.pending).await;
        assert_eq!(
            request.status,
            countersign_server::store::auth_requests::AuthRequestStatus::Denied
        );
    }

    /// Still alive (for what must not have been touched).
    pub async fn assert_alive(&self, s: &TestServer) {
        assert!(
            self.call(s.now_s() + 2).await.is_ok(),
            "the credential must stay valid"
        );
    }
}
