//! The demo's two outside parties, speaking only the wire protocols: the procurement agent
//! (a CIBA client authenticating with `private_key_jwt`, RFC 7523, and binding its
//! credentials to a DPoP key, RFC 9449) and the order tool, which checks every call with
//! the `verifier` crate as a real tool would, offline but for the issuer's keys and
//! status list.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use countersign_jose::{Header, Jwk, JwkSet, SigningKeyPair, b64url_encode, random_b64url};
use countersign_server::clock::{Clock as _, SystemClock};
use countersign_shared::ciba::CIBA_GRANT_TYPE;
use countersign_verifier::status::HttpStatusSource;
use countersign_verifier::{Presentation, Rejection, Verdict, Verifier};
use serde_json::{Value, json};
use sha2::Digest as _;

/// Where the order tool takes calls (the URL DPoP proofs name).
pub const TOOL_URL: &str = "https://tools.example.com/orders";

fn now_s() -> i64 {
    SystemClock.now_ms().div_euclid(1000)
}

/// A protocol answer: the HTTP status and the JSON body.
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    pub fn error(&self) -> Option<&str> {
        self.body["error"].as_str()
    }

    pub fn description(&self) -> &str {
        self.body["error_description"].as_str().unwrap_or_default()
    }
}

pub struct DemoAgent {
    pub client_id: String,
    issuer: String,
    /// Authenticates the client (its public half is the registered JWKS).
    client_key: SigningKeyPair,
    /// Holds the credentials: they are bound to its thumbprint.
    pub dpop_key: SigningKeyPair,
    http: reqwest::Client,
}

impl DemoAgent {
    pub fn new(client_id: &str, issuer: &str) -> Self {
        Self {
            client_id: client_id.to_owned(),
            issuer: issuer.to_owned(),
            client_key: SigningKeyPair::generate(),
            dpop_key: SigningKeyPair::generate(),
            http: reqwest::Client::new(),
        }
    }

    /// The JWK Set registered for the client.
    pub fn jwks(&self) -> anyhow::Result<Value> {
        Ok(serde_json::to_value(JwkSet {
            keys: vec![self.client_key.public_jwk()],
        })?)
    }

    /// RFC 7638 thumbprint of the DPoP key (the credentials' `cnf.jkt`).
    pub fn dpop_thumbprint(&self) -> anyhow::Result<String> {
        Ok(countersign_jose::thumbprint(&self.dpop_key.public_jwk())?)
    }

    async fn post(
        &self,
        path: &str,
        mut form: Vec<(&str, String)>,
        dpop: Option<String>,
    ) -> anyhow::Result<Answer> {
        let now = now_s();
        let assertion = self.client_key.sign(
            "JWT",
            &json!({
                "iss": self.client_id, "sub": self.client_id, "aud": self.issuer,
                "iat": now, "exp": now + 60, "jti": random_b64url(16),
            }),
        )?;
        form.push((
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
        ));
        form.push(("client_assertion", assertion));
        let mut request = self.http.post(format!("{}{path}", self.issuer)).form(&form);
        if let Some(proof) = dpop {
            request = request.header("DPoP", proof);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Answer { status, body })
    }

    /// `POST /bc-authorize` for `login_hint` with these `authorization_details`.
    pub async fn bc_authorize(
        &self,
        login_hint: &str,
        details: &Value,
        binding_message: &str,
    ) -> anyhow::Result<Answer> {
        let form = vec![
            ("scope", "openid".to_owned()),
            ("login_hint", login_hint.to_owned()),
            ("binding_message", binding_message.to_owned()),
            ("authorization_details", details.to_string()),
        ];
        self.post("/bc-authorize", form, None).await
    }

    /// One token request for `auth_req_id`, with a fresh DPoP proof.
    pub async fn token(&self, auth_req_id: &str) -> anyhow::Result<Answer> {
        let form = vec![
            ("grant_type", CIBA_GRANT_TYPE.to_owned()),
            ("auth_req_id", auth_req_id.to_owned()),
        ];
        let proof = self.dpop_proof("POST", &format!("{}/token", self.issuer), None)?;
        self.post("/token", form, Some(proof)).await
    }

    /// Polls the token endpoint as CIBA §7.3 says (every `interval` seconds, five more
    /// after `slow_down`) until the answer is anything but `authorization_pending`.
    pub async fn poll(&self, auth_req_id: &str, interval_secs: u64) -> anyhow::Result<Answer> {
        let mut interval = Duration::from_secs(interval_secs.max(1));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            tokio::time::sleep(interval).await;
            let answer = self.token(auth_req_id).await?;
            match answer.error() {
                Some("authorization_pending") => {}
                Some("slow_down") => interval += Duration::from_secs(5),
                _ => return Ok(answer),
            }
            if Instant::now() > deadline {
                bail!("no answer for {auth_req_id} within a minute of polling");
            }
        }
    }

    /// A DPoP proof (RFC 9449 §4) for `method url`; with `credential`, for a resource
    /// call (`ath`, §7).
    pub fn dpop_proof(
        &self,
        method: &str,
        url: &str,
        credential: Option<&str>,
    ) -> anyhow::Result<String> {
        let header = Header {
            typ: Some("dpop+jwt".into()),
            jwk: Some(Jwk {
                kid: None,
                alg: None,
                use_: None,
                ..self.dpop_key.public_jwk()
            }),
            ..Header::default()
        };
        let mut claims = json!({
            "jti": random_b64url(16), "htm": method, "htu": url, "iat": now_s(),
        });
        if let Some(credential) = credential {
            claims["ath"] = b64url_encode(sha2::Sha256::digest(credential.as_bytes())).into();
        }
        Ok(self.dpop_key.sign_with_header(&header, &claims)?)
    }
}

/// The order tool: trusts the issuer's published keys and caches its status list for at
/// most `status_ttl`.
pub struct OrderTool {
    verifier: Arc<Verifier>,
}

impl OrderTool {
    pub fn new(issuer: &str, jwks: &JwkSet, status_ttl: Duration) -> Self {
        Self {
            verifier: Arc::new(
                Verifier::builder()
                    .trust_issuer(issuer, jwks)
                    .status_source(HttpStatusSource::default())
                    .status_ttl(status_ttl)
                    .build(),
            ),
        }
    }

    /// The tool's check of a `purchase_order` call with `arguments`, presented by `agent`
    /// with `credential` and a fresh DPoP proof. The verifier is synchronous (what tools
    /// embed), so it runs off the runtime that serves the status list.
    pub async fn call(
        &self,
        agent: &DemoAgent,
        credential: &str,
        arguments: Value,
    ) -> anyhow::Result<Result<Verdict, Rejection>> {
        let proof = agent.dpop_proof("POST", TOOL_URL, Some(credential))?;
        let (verifier, credential) = (self.verifier.clone(), credential.to_owned());
        Ok(tokio::task::spawn_blocking(move || {
            verifier.verify(&Presentation {
                token: &credential,
                dpop_proof: Some(&proof),
                method: "POST",
                url: TOOL_URL,
                action: Some("purchase_order"),
                arguments: Some(&arguments),
            })
        })
        .await?)
    }
}
