//! The agents of the crash test: each runs `bc-authorize` -> developer approval -> `token`
//! (with a DPoP proof by its own key) in a loop, and keeps a ledger of what the server
//! acknowledged and of what a kill took from it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use countersign_jose::{Header, Jwk, SigningKeyPair, random_b64url, thumbprint};
use countersign_server::store::auth_requests::AuthRequestStatus;
use countersign_tests::{CIBA_GRANT, jwt_claims};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Bound on the flows one client starts, whatever the speed of the machine.
const MAX_FLOWS_PER_CLIENT: usize = 3000;
/// Attempts of one step while the server is down, `RETRY_PAUSE` apart (about 30 s).
const MAX_ATTEMPTS: usize = 600;
const RETRY_PAUSE: Duration = Duration::from_millis(50);
/// `slow_down` answers one token request may get before that is unexpected.
const MAX_SLOW_DOWNS: usize = 3;
/// The configured polling interval; a client told `slow_down` waits this long.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// One agent: its client credentials, its DPoP key and an HTTP client of its own.
pub struct AgentClient {
    pub client_id: String,
    secret: String,
    dpop: SigningKeyPair,
    /// The thumbprint of the DPoP key, which its tokens must be bound to.
    pub jkt: String,
    base: String,
    http: reqwest::Client,
}

/// What the server acknowledged to one client, and what kills took from it.
#[derive(Debug, Default)]
pub struct Ledger {
    /// `auth_req_id`s of 200 answers to `bc-authorize`.
    pub requests: Vec<String>,
    /// Requests whose approval was answered 204.
    pub approved: Vec<String>,
    /// Requests whose approval attempt got no answer, and whose retry found it decided
    /// (409): the lost attempt had been recorded.
    pub approved_unacked: Vec<String>,
    /// `(auth_req_id, jti)` of 200 answers at the token endpoint.
    pub tokens: Vec<(String, String)>,
    /// Requests whose token attempt got no answer, and whose retry found the token
    /// issued: it was recorded but never handed out.
    pub tokens_unacked: Vec<String>,
    /// Requests that got no answer (refused, reset, cut off, timed out).
    pub transport_errors: usize,
    pub slow_downs: usize,
    /// Answers no crash explains.
    pub unexpected: Vec<String>,
}

/// An HTTP answer, or `None` when none arrived whole.
type Answer = Option<(StatusCode, Value)>;

impl AgentClient {
    pub fn new(client_id: String, secret: String, base: String) -> Self {
        let dpop = SigningKeyPair::generate();
        let jkt = thumbprint(&dpop.public_jwk()).expect("thumbprint");
        Self {
            client_id,
            secret,
            dpop,
            jkt,
            base,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("HTTP client"),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let resp = req.send().await.ok()?;
        let status = resp.status();
        // A body cut off by a kill is no answer: nothing was acknowledged.
        let bytes = resp.bytes().await.ok()?;
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Some((status, body))
    }

    async fn bc_authorize(&self, n: usize) -> Answer {
        let binding = format!("flow {n}");
        let req = self
            .http
            .post(format!("{}/bc-authorize", self.base))
            .basic_auth(&self.client_id, Some(&self.secret))
            .form(&[
                ("scope", "openid"),
                ("login_hint", "alice"),
                ("binding_message", binding.as_str()),
            ]);
        self.send(req).await
    }

    async fn approve(&self, id: &str) -> Answer {
        let url = format!("{}/dev/approvals/{id}/approve", self.base);
        self.send(self.http.post(url)).await
    }

    /// A token request with a fresh DPoP proof by this agent's key.
    async fn token(&self, id: &str) -> Answer {
        let url = format!("{}/token", self.base);
        let proof = dpop_proof(&self.dpop, &url);
        let req = self
            .http
            .post(url)
            .basic_auth(&self.client_id, Some(&self.secret))
            .header("DPoP", proof)
            .form(&[("grant_type", CIBA_GRANT), ("auth_req_id", id)]);
        self.send(req).await
    }
}

/// Runs flows until `stop`. Every flow started is finished: the server is up when `stop`
/// is set, so retries end.
pub async fn run(agent: Arc<AgentClient>, stop: Arc<AtomicBool>) -> Ledger {
    let mut ledger = Ledger::default();
    for n in 0..MAX_FLOWS_PER_CLIENT {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let id = match agent.bc_authorize(n).await {
            Some((StatusCode::OK, body)) => match body["auth_req_id"].as_str() {
                Some(id) => id.to_owned(),
                None => {
                    ledger.unexpected.push(format!("bc-authorize 200: {body}"));
                    continue;
                }
            },
            Some((status, body)) => {
                ledger
                    .unexpected
                    .push(format!("bc-authorize {status}: {body}"));
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            }
            None => {
                // The request may or may not exist; it was not acknowledged.
                ledger.transport_errors += 1;
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            }
        };
        ledger.requests.push(id.clone());
        if approve(&agent, &id, &mut ledger).await {
            fetch_token(&agent, &id, &mut ledger).await;
        }
    }
    ledger
}

/// Approves `id`, retrying while the server is down; whether it is approved.
async fn approve(agent: &AgentClient, id: &str, ledger: &mut Ledger) -> bool {
    let mut lost = false;
    for _ in 0..MAX_ATTEMPTS {
        match agent.approve(id).await {
            Some((StatusCode::NO_CONTENT, _)) => {
                ledger.approved.push(id.to_owned());
                return true;
            }
            Some((StatusCode::CONFLICT, _)) if lost => {
                ledger.approved_unacked.push(id.to_owned());
                return true;
            }
            Some((status, body)) => {
                ledger.unexpected.push(format!(
                    "approve {id} (lost before: {lost}): {status} {body}"
                ));
                return false;
            }
            None => {
                lost = true;
                ledger.transport_errors += 1;
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
    ledger.unexpected.push(format!(
        "approve {id}: no answer after {MAX_ATTEMPTS} attempts"
    ));
    false
}

/// Polls the token endpoint for approved `id` until it answers for good.
async fn fetch_token(agent: &AgentClient, id: &str, ledger: &mut Ledger) {
    let mut lost = false;
    let mut slow_downs = 0;
    for _ in 0..MAX_ATTEMPTS {
        match agent.token(id).await {
            Some((StatusCode::OK, body)) => {
                match issued_jti(&body) {
                    Some(jti) => ledger.tokens.push((id.to_owned(), jti)),
                    None => ledger.unexpected.push(format!("token {id} 200: {body}")),
                }
                return;
            }
            Some((StatusCode::BAD_REQUEST, body)) => match body["error"].as_str() {
                // The lost attempt issued the token before the kill: recorded, never
                // handed out; the agent has to ask again.
                Some("invalid_grant") if lost && already_issued(&body) => {
                    ledger.tokens_unacked.push(id.to_owned());
                    return;
                }
                // Only when a lost attempt had polled less than an interval ago.
                Some("slow_down") if slow_downs < MAX_SLOW_DOWNS => {
                    slow_downs += 1;
                    ledger.slow_downs += 1;
                    tokio::time::sleep(POLL_INTERVAL).await;
                }
                // `authorization_pending` among them: the approval is not recorded.
                _ => {
                    ledger
                        .unexpected
                        .push(format!("token {id} (lost before: {lost}): 400 {body}"));
                    return;
                }
            },
            Some((status, body)) => {
                ledger
                    .unexpected
                    .push(format!("token {id} (lost before: {lost}): {status} {body}"));
                return;
            }
            None => {
                lost = true;
                ledger.transport_errors += 1;
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
    ledger.unexpected.push(format!(
        "token {id}: no answer after {MAX_ATTEMPTS} attempts"
    ));
}

/// The `jti` of the access token in a token response, if it is a DPoP-bound one.
fn issued_jti(body: &Value) -> Option<String> {
    if body["token_type"] != "DPoP" {
        return None;
    }
    let claims = jwt_claims(body["access_token"].as_str()?);
    Some(claims["jti"].as_str()?.to_owned())
}

/// Whether a token error says the request's tokens were issued before.
fn already_issued(body: &Value) -> bool {
    body["error"] == "invalid_grant"
        && body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("already issued"))
}

/// What polling a decided request after the load got.
pub enum FinalPoll {
    /// A token was handed out now (its jti).
    Token(String),
    AlreadyIssued,
    Other(String),
}

/// Polls each of `agent`'s decided requests once the load has stopped: one stored as
/// approved must get its token, one stored as issued `invalid_grant`.
pub async fn final_polls(
    agent: Arc<AgentClient>,
    ids: Vec<(String, AuthRequestStatus)>,
) -> Vec<(String, FinalPoll)> {
    let mut out = Vec::new();
    for (id, status) in ids {
        let mut outcome = FinalPoll::Other("slow_down three times".into());
        // slow_down only when the load polled it less than an interval ago.
        for _ in 0..3 {
            let answer = agent.token(&id).await.expect("the server is up");
            outcome = match (status, answer) {
                (AuthRequestStatus::Approved, (StatusCode::OK, body)) => match issued_jti(&body) {
                    Some(jti) => FinalPoll::Token(jti),
                    None => FinalPoll::Other(format!("200 {body}")),
                },
                (AuthRequestStatus::Issued, (StatusCode::BAD_REQUEST, body))
                    if already_issued(&body) =>
                {
                    FinalPoll::AlreadyIssued
                }
                (_, (StatusCode::BAD_REQUEST, body)) if body["error"] == "slow_down" => {
                    tokio::time::sleep(POLL_INTERVAL).await;
                    continue;
                }
                (status, (code, body)) => {
                    FinalPoll::Other(format!("stored as {status:?}, answered {code} {body}"))
                }
            };
            break;
        }
        out.push((id, outcome));
    }
    out
}

/// A DPoP proof (RFC 9449) for `POST url` by `key`, with a fresh `jti`.
fn dpop_proof(key: &SigningKeyPair, url: &str) -> String {
    let header = Header {
        typ: Some("dpop+jwt".into()),
        jwk: Some(Jwk {
            kid: None,
            alg: None,
            use_: None,
            ..key.public_jwk()
        }),
        ..Header::default()
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("time")
        .as_secs();
    key.sign_with_header(
        &header,
        &json!({"jti": random_b64url(12), "htm": "POST", "htu": url, "iat": now}),
    )
    .expect("sign proof")
}
