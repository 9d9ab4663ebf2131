//! The gateway's [`Authority`] on another machine than Countersign: a gateway beside one
//! agent (`countersign gateway --remote URL`) asks Countersign over its public HTTP API,
//! authenticated with the agent's own client credentials, exactly as the agent itself
//! would: `POST /v1/decisions` decides each call, CIBA's `/bc-authorize` and `/token` ask
//! for and collect approvals (the credential DPoP-bound to a key this gateway holds for
//! the agent), and `POST /v1/gateway-calls` and `/v1/withdrawals` report back to the trace.
//! Nothing of Countersign's database or keys is on this machine.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use countersign_gateway::{
    AgentId, Approval, ApprovalView, Authority, AuthorityError, Call, Fate, Grant, Pending,
    PresentedToken, TokenRefused, Verdict, mapping::Action,
};
use countersign_jose::{SigningKeyPair, b64url_decode, random_b64url, thumbprint};
use countersign_shared::ciba::CIBA_GRANT_TYPE;
use serde_json::{Map, Value, json};

use super::agent_keys::AgentKeys;
use super::authority::{approval_params, dry_run_call, params, verdict};
use super::calls::CallReport;
use crate::flows::decide::DecisionAnswer;
use crate::paths;
use crate::policy::Outcome;

/// How the gateway authenticates as the agent (the method the agent is registered with).
pub enum ClientCredential {
    /// `client_secret_basic`.
    SecretBasic(String),
    /// `client_secret_post`.
    SecretPost(String),
    /// `private_key_jwt` (RFC 7523): the agent's private key.
    PrivateKey(Box<SigningKeyPair>),
}

impl ClientCredential {
    /// The agent's private key from a private JWK (RFC 7517: EC P-256 with `d`), checked
    /// against the public half it names.
    pub fn private_jwk(text: &str) -> Result<Self, String> {
        let jwk: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        if jwk["kty"] != "EC" || jwk["crv"] != "P-256" {
            return Err("not an EC P-256 key (kty EC, crv P-256)".into());
        }
        let d = jwk["d"]
            .as_str()
            .ok_or("no private part (d): this is a public key")?;
        let scalar = b64url_decode(d).ok_or("d is not base64url")?;
        let pair =
            SigningKeyPair::from_scalar(String::new(), &scalar).map_err(|e| format!("d: {e}"))?;
        let public = pair.public_jwk();
        if jwk["x"].as_str() != public.x.as_deref() || jwk["y"].as_str() != public.y.as_deref() {
            return Err("x and y are not the public half of d".into());
        }
        // The assertions name the key as the agent's registered JWK Set does: its `kid`,
        // or, without one, its RFC 7638 thumbprint (how Countersign names keys).
        let kid = match jwk["kid"].as_str() {
            Some(kid) => kid.to_owned(),
            None => thumbprint(&public).map_err(|e| e.to_string())?,
        };
        let pair = SigningKeyPair::from_scalar(kid, &scalar).map_err(|e| format!("d: {e}"))?;
        Ok(Self::PrivateKey(Box::new(pair)))
    }
}

/// Where and as whom the gateway asks.
pub struct RemoteSettings {
    /// Countersign's issuer URL.
    pub issuer: String,
    /// The agent's client id.
    pub agent: String,
    pub credential: ClientCredential,
    /// How long an approval may be awaited (`[gateway] hold_timeout_secs`).
    pub hold_timeout_secs: u64,
}

/// Countersign over HTTP, as one agent.
pub struct Remote {
    http: reqwest::Client,
    issuer: String,
    agent: AgentId,
    credential: ClientCredential,
    keys: Arc<AgentKeys>,
    hold_timeout_secs: u64,
    /// The human approvals are asked of: the subject of the latest decision (the agent's
    /// owner, as Countersign has it now).
    subject: Mutex<String>,
}

/// An HTTP answer: the status and the JSON body (or the text, as a string).
struct Answer {
    status: u16,
    body: Value,
}

impl Answer {
    fn error(&self) -> Option<&str> {
        self.body["error"].as_str()
    }

    fn description(&self) -> String {
        self.body["error_description"]
            .as_str()
            .or(self.error())
            .unwrap_or("no error description")
            .to_owned()
    }

    /// The error an answer that is not a success stands for.
    fn refusal(&self) -> AuthorityError {
        let text = format!(
            "Countersign answered {}: {}",
            self.status,
            self.description()
        );
        match (self.status, self.error()) {
            (401, _) | (_, Some("invalid_client" | "unauthorized_client")) => {
                AuthorityError::Unauthorized(text)
            }
            (429 | 500..=599, _) | (_, Some("slow_down")) => AuthorityError::Unavailable(text),
            _ => AuthorityError::Invalid(text),
        }
    }
}

fn form(params: Map<String, Value>) -> Vec<(String, String)> {
    params
        .into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => (k, s),
            other => (k, other.to_string()),
        })
        .collect()
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Remote {
    /// Connects as the agent: one dry-run decision checks the credentials and learns
    /// whom approvals are asked of, so a wrong URL or credential fails here, not at the
    /// first call.
    pub async fn connect(
        settings: RemoteSettings,
        keys: Arc<AgentKeys>,
    ) -> Result<Self, AuthorityError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| AuthorityError::Unavailable(e.to_string()))?;
        let remote = Self {
            http,
            issuer: settings.issuer.trim_end_matches('/').to_owned(),
            agent: AgentId(settings.agent),
            credential: settings.credential,
            keys,
            hold_timeout_secs: settings.hold_timeout_secs,
            subject: Mutex::default(),
        };
        let mut check = Map::new();
        check.insert("dry_run".into(), json!("true"));
        remote.decision(check).await?;
        Ok(remote)
    }

    /// The agent this gateway serves.
    pub fn agent(&self) -> &AgentId {
        &self.agent
    }

    async fn post(
        &self,
        path: &str,
        mut form: Vec<(String, String)>,
        dpop: Option<String>,
    ) -> Result<Answer, AuthorityError> {
        let url = format!("{}{path}", self.issuer);
        let id = &self.agent.0;
        let mut request = self.http.post(&url);
        match &self.credential {
            ClientCredential::SecretBasic(secret) => {
                // RFC 6749 §2.3.1: both parts form-encoded before Basic.
                let pair = format!(
                    "{}:{}",
                    form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>(),
                    form_urlencoded::byte_serialize(secret.as_bytes()).collect::<String>()
                );
                let basic = base64::engine::general_purpose::STANDARD.encode(pair);
                request = request.header("Authorization", format!("Basic {basic}"));
            }
            ClientCredential::SecretPost(secret) => {
                form.push(("client_id".into(), id.clone()));
                form.push(("client_secret".into(), secret.clone()));
            }
            ClientCredential::PrivateKey(key) => {
                let now = now_s();
                let assertion = key
                    .sign(
                        "JWT",
                        &json!({
                            "iss": id, "sub": id, "aud": self.issuer,
                            "iat": now, "exp": now + 60, "jti": random_b64url(16),
                        }),
                    )
                    .map_err(|e| AuthorityError::Unavailable(e.to_string()))?;
                form.push((
                    "client_assertion_type".into(),
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
                ));
                form.push(("client_assertion".into(), assertion));
            }
        }
        if let Some(proof) = dpop {
            request = request.header("DPoP", proof);
        }
        let response = request
            .form(&form)
            .send()
            .await
            .map_err(|e| AuthorityError::Unavailable(format!("POST {url}: {e}")))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| AuthorityError::Unavailable(format!("POST {url}: {e}")))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Answer { status, body })
    }

    /// `POST /v1/decisions` with `params`.
    async fn decision(&self, params: Map<String, Value>) -> Result<DecisionAnswer, AuthorityError> {
        self.decision_or_refusal(params)
            .await?
            .map_err(|refused| refused.refusal())
    }

    /// `POST /v1/decisions` with `params`: the answer, or the refusal as Countersign sent it.
    async fn decision_or_refusal(
        &self,
        params: Map<String, Value>,
    ) -> Result<Result<DecisionAnswer, Answer>, AuthorityError> {
        let answer = self.post(paths::DECISIONS, form(params), None).await?;
        if answer.status != 200 {
            return Ok(Err(answer));
        }
        let decided: DecisionAnswer = serde_json::from_value(answer.body).map_err(|e| {
            AuthorityError::Unavailable(format!("the decision answer is not one: {e}"))
        })?;
        decided
            .subject
            .clone_into(&mut self.subject.lock().unwrap_or_else(|p| p.into_inner()));
        Ok(Ok(decided))
    }

    fn jkt(&self) -> Result<String, AuthorityError> {
        Ok(self
            .keys
            .key(&self.agent.0)
            .map_err(AuthorityError::Unavailable)?
            .1
            .clone())
    }

    /// Calls must come from the agent this gateway serves.
    fn check_agent(&self, agent: &AgentId) -> Result<(), AuthorityError> {
        if agent == &self.agent {
            Ok(())
        } else {
            Err(AuthorityError::Unauthorized(format!(
                "this gateway serves agent {}, not {agent}",
                self.agent
            )))
        }
    }
}

impl Authority for Remote {
    async fn authenticate(&self, _token: PresentedToken<'_>) -> Result<AgentId, TokenRefused> {
        // Served over stdio only: the agent is the one whose credentials the gateway holds.
        Err(TokenRefused::InvalidToken(
            "a gateway beside its agent takes no tokens; it serves its agent over stdio".into(),
        ))
    }

    async fn decide(&self, call: &Call) -> Result<Verdict, AuthorityError> {
        self.check_agent(&call.agent)?;
        let answer = self.decision(params(call, false)).await?;
        Ok(verdict(answer))
    }

    async fn may_offer(
        &self,
        agent: &AgentId,
        tool: &str,
        action: &Action,
    ) -> Result<bool, AuthorityError> {
        self.check_agent(agent)?;
        let call = dry_run_call(agent, tool, action);
        match self.decision_or_refusal(params(&call, true)).await? {
            Ok(answer) => Ok(answer.decision != Outcome::Deny),
            // An entry the deployment's schema refuses without arguments may still be
            // callable with them.
            Err(refused) if refused.error() == Some("invalid_authorization_details") => Ok(true),
            Err(refused) => Err(refused.refusal()),
        }
    }

    async fn request_approval(
        &self,
        call: &Call,
        binding_message: &str,
    ) -> Result<Pending, AuthorityError> {
        self.check_agent(&call.agent)?;
        let subject = self
            .subject
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let params = approval_params(
            call,
            binding_message,
            &subject,
            &self.jkt()?,
            self.hold_timeout_secs,
        );
        let answer = self.post(paths::BC_AUTHORIZE, form(params), None).await?;
        if answer.status != 200 {
            return Err(answer.refusal());
        }
        let field = |name: &str| answer.body[name].as_u64();
        let auth_req_id = answer.body["auth_req_id"]
            .as_str()
            .ok_or_else(|| AuthorityError::Unavailable("no auth_req_id in the answer".into()))?;
        Ok(Pending {
            auth_req_id: auth_req_id.to_owned(),
            expires_in_ms: field("expires_in").unwrap_or(0).saturating_mul(1000),
            interval_ms: field("interval").unwrap_or(5).saturating_mul(1000),
        })
    }

    async fn poll(&self, agent: &AgentId, auth_req_id: &str) -> Result<Approval, AuthorityError> {
        self.check_agent(agent)?;
        let token_url = format!("{}{}", self.issuer, paths::TOKEN);
        let proof = self
            .keys
            .proof(&agent.0, "POST", &token_url, None, now_s())
            .map_err(AuthorityError::Unavailable)?;
        let form = vec![
            ("grant_type".to_owned(), CIBA_GRANT_TYPE.to_owned()),
            ("auth_req_id".to_owned(), auth_req_id.to_owned()),
        ];
        let answer = self.post(paths::TOKEN, form, Some(proof)).await?;
        if answer.status == 200 {
            let access_token = answer.body["access_token"]
                .as_str()
                .ok_or_else(|| AuthorityError::Unavailable("no access_token".into()))?;
            let approved = match &answer.body["authorization_details"] {
                Value::Array(items) => items.clone(),
                _ => Vec::new(),
            };
            return Ok(Approval::Granted(Grant {
                access_token: access_token.to_owned(),
                approved,
            }));
        }
        Ok(match answer.error() {
            Some("authorization_pending") => Approval::Pending,
            Some("slow_down") => Approval::SlowDown,
            Some("access_denied") => Approval::Denied {
                reason: Some(answer.description()),
            },
            Some("expired_token") => Approval::Expired,
            // Only this answer says the credential was handed out already.
            Some("invalid_grant") if answer.description().contains("already issued") => {
                Approval::AlreadyUsed
            }
            _ => return Err(answer.refusal()),
        })
    }

    async fn withdraw(
        &self,
        agent: &AgentId,
        auth_req_id: &str,
        reason: &str,
    ) -> Result<(), AuthorityError> {
        self.check_agent(agent)?;
        let form = vec![
            ("auth_req_id".to_owned(), auth_req_id.to_owned()),
            ("reason".to_owned(), reason.to_owned()),
        ];
        let answer = self.post(paths::WITHDRAWALS, form, None).await?;
        if answer.status == 200 {
            Ok(())
        } else {
            Err(answer.refusal())
        }
    }

    async fn approval_status(
        &self,
        _auth_req_id: &str,
    ) -> Result<Option<ApprovalView>, AuthorityError> {
        // No approval pages are served here (the gateway's request states have none).
        Ok(None)
    }

    fn dpop_proof(
        &self,
        agent: &AgentId,
        method: &str,
        url: &str,
        access_token: &str,
    ) -> Result<String, AuthorityError> {
        self.keys
            .proof(&agent.0, method, url, Some(access_token), now_s())
            .map_err(AuthorityError::Unavailable)
    }

    async fn record(
        &self,
        call: &Call,
        decision_id: Option<&str>,
        fate: &Fate,
    ) -> Result<(), AuthorityError> {
        let report = CallReport::of(call, decision_id, fate);
        let mut form = vec![
            ("tool".to_owned(), report.tool),
            ("outcome".to_owned(), report.outcome.to_owned()),
            ("mcp_request_id".to_owned(), report.mcp_request_id),
        ];
        let optional = [
            ("decision_id", report.decision_id),
            ("session", report.session),
            ("reason", report.reason),
            ("auth_req_id", report.auth_req_id),
        ];
        for (name, value) in optional {
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                form.push((name.to_owned(), value));
            }
        }
        let answer = self.post(paths::GATEWAY_CALLS, form, None).await?;
        if answer.status == 200 {
            Ok(())
        } else {
            Err(answer.refusal())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_jwk_gives_the_key_it_names() {
        let pair = SigningKeyPair::generate();
        let public = pair.public_jwk();
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "x": public.x, "y": public.y,
            "d": countersign_jose::b64url_encode(pair.scalar_bytes()),
        });
        let Ok(ClientCredential::PrivateKey(loaded)) =
            ClientCredential::private_jwk(&jwk.to_string())
        else {
            panic!("the key loads");
        };
        assert_eq!(loaded.public_jwk().x, public.x);
        assert_eq!(
            loaded.kid(),
            pair.kid(),
            "no kid: the thumbprint, as generated keys have"
        );

        let mut public_only = jwk.clone();
        public_only.as_object_mut().unwrap().remove("d");
        assert!(ClientCredential::private_jwk(&public_only.to_string()).is_err());
        let mut mismatched = jwk.clone();
        mismatched["x"] = json!(SigningKeyPair::generate().public_jwk().x);
        assert!(ClientCredential::private_jwk(&mismatched.to_string()).is_err());
        let mut rsa = jwk;
        rsa["kty"] = "RSA".into();
        assert!(ClientCredential::private_jwk(&rsa.to_string()).is_err());
        assert!(ClientCredential::private_jwk("not json").is_err());
    }

    #[test]
    fn refusals_say_whether_to_retry() {
        let answer = |status: u16, error: &str| Answer {
            status,
            body: json!({"error": error, "error_description": "why"}),
        };
        assert!(matches!(
            answer(401, "invalid_client").refusal(),
            AuthorityError::Unauthorized(_)
        ));
        assert!(matches!(
            answer(400, "unauthorized_client").refusal(),
            AuthorityError::Unauthorized(_)
        ));
        assert!(matches!(
            answer(503, "temporarily_unavailable").refusal(),
            AuthorityError::Unavailable(_)
        ));
        assert!(matches!(
            answer(429, "slow_down").refusal(),
            AuthorityError::Unavailable(_)
        ));
        let AuthorityError::Invalid(text) = answer(400, "invalid_request").refusal() else {
            panic!("a malformed request is the caller's to fix");
        };
        assert!(text.contains("400") && text.contains("why"), "{text}");
    }
}
