//! A local Firebase Cloud Messaging HTTP v1 service with Google's OAuth token endpoint:
//! `POST /token` takes the JWT bearer grant (RFC 7523) and checks the RS256 assertion
//! against the service account's public key (`iss`, `aud`, `scope`, lifetime) before
//! issuing an access token; `POST /v1/projects/{project}/messages:send` checks that bearer
//! and the message, and can be told to answer with FCM's real error bodies. The test's
//! service account (a fresh RSA key) comes with it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::{EncodePrivateKey as _, LineEnding};
use rsa::signature::Verifier as _;
use serde_json::{Value, json};
use sha2::Sha256;

pub const PROJECT: &str = "countersign-test";
pub const CLIENT_EMAIL: &str = "push@countersign-test.iam.gserviceaccount.com";

/// An answer FCM can give to `messages:send`.
#[derive(Debug, Clone)]
pub enum FcmReply {
    Ok,
    /// Status, FCM error code, optional `Retry-After` seconds.
    Error(u16, &'static str, Option<u64>),
}

#[derive(Debug, Clone)]
pub struct FcmDelivery {
    pub message: Value,
    pub status: u16,
}

struct Shared {
    public_key: rsa::RsaPublicKey,
    token_uri: String,
    issued: Vec<String>,
    token_requests: usize,
    received: Vec<FcmDelivery>,
    script: VecDeque<FcmReply>,
}

pub struct FakeFcm {
    pub addr: SocketAddr,
    /// The service account key JSON (with this fake as `token_uri`).
    pub service_account: String,
    shared: Arc<Mutex<Shared>>,
    task: tokio::task::JoinHandle<()>,
}

fn oauth_error(code: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": code, "error_description": description })),
    )
        .into_response()
}

/// Verifies the RS256 assertion of a JWT bearer grant.
fn check_assertion(shared: &Shared, assertion: &str) -> Result<(), &'static str> {
    let mut parts = assertion.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a JWT");
    };
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header: Value = b64
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("bad header")?;
    if header["alg"] != "RS256" {
        return Err("alg must be RS256");
    }
    let signature = b64.decode(s).map_err(|_| "bad signature encoding")?;
    let signature = Signature::try_from(signature.as_slice()).map_err(|_| "bad signature")?;
    VerifyingKey::<Sha256>::new(shared.public_key.clone())
        .verify(format!("{h}.{p}").as_bytes(), &signature)
        .map_err(|_| "invalid JWT signature")?;
    let claims: Value = b64
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("bad claims")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if claims["iss"] != CLIENT_EMAIL || claims["aud"] != shared.token_uri.as_str() {
        return Err("wrong iss or aud");
    }
    if claims["scope"] != "https://www.googleapis.com/auth/firebase.messaging" {
        return Err("wrong scope");
    }
    match (claims["iat"].as_i64(), claims["exp"].as_i64()) {
        (Some(iat), Some(exp)) if exp > now && exp - iat <= 3600 && iat <= now + 60 => Ok(()),
        _ => Err("bad iat/exp"),
    }
}

async fn token(
    State(shared): State<Arc<Mutex<Shared>>>,
    Form(form): Form<std::collections::HashMap<String, String>>,
) -> Response {
    let mut s = shared.lock().expect("lock");
    s.token_requests += 1;
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return oauth_error("unsupported_grant_type", "jwt-bearer only");
    }
    let Some(assertion) = form.get("assertion") else {
        return oauth_error("invalid_request", "assertion is required");
    };
    if let Err(why) = check_assertion(&s, assertion) {
        return oauth_error("invalid_grant", why);
    }
    let access = format!("ya29.{}", countersign_jose::random_b64url(24));
    s.issued.push(access.clone());
    Json(json!({ "access_token": access, "expires_in": 3599, "token_type": "Bearer" }))
        .into_response()
}

fn fcm_error(status: u16, code: &str, retry_after: Option<u64>) -> Response {
    let status_name = match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    };
    let body = json!({ "error": {
        "code": status, "message": code, "status": status_name,
        "details": [{ "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code }],
    }});
    let mut response = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        Json(body),
    )
        .into_response();
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert("retry-after", secs.to_string().parse().expect("header"));
    }
    response
}

async fn send(
    State(shared): State<Arc<Mutex<Shared>>>,
    Path((project, method)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut s = shared.lock().expect("lock");
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !s.issued.iter().any(|t| t == bearer) {
        return fcm_error(401, "UNAUTHENTICATED", None);
    }
    let message = &body["message"];
    let reply = if project != PROJECT || method != "messages:send" {
        FcmReply::Error(404, "SENDER_ID_MISMATCH", None)
    } else if !message["token"].is_string()
        || !message["data"]["request_id"].is_string()
        || message["android"]["priority"] != "HIGH"
        || !message["android"]["ttl"]
            .as_str()
            .is_some_and(|t| t.ends_with('s'))
        || message.get("notification").is_some()
    {
        FcmReply::Error(400, "INVALID_ARGUMENT", None)
    } else {
        s.script.pop_front().unwrap_or(FcmReply::Ok)
    };
    let status = match &reply {
        FcmReply::Ok => 200,
        FcmReply::Error(status, ..) => *status,
    };
    s.received.push(FcmDelivery {
        message: message.clone(),
        status,
    });
    match reply {
        FcmReply::Ok => Json(json!({ "name": format!("projects/{PROJECT}/messages/{}", countersign_jose::random_b64url(8)) })).into_response(),
        FcmReply::Error(status, code, after) => fcm_error(status, code, after),
    }
}

impl FakeFcm {
    pub async fn start() -> Self {
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("RSA key");
        let pem = key.to_pkcs8_pem(LineEnding::LF).expect("PEM").to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake FCM");
        let addr = listener.local_addr().expect("addr");
        let token_uri = format!("http://{addr}/token");
        let service_account = json!({
            "type": "service_account", "project_id": PROJECT, "private_key_id": "test-key-1",
            "private_key": pem, "client_email": CLIENT_EMAIL, "token_uri": token_uri,
        })
        .to_string();
        let shared = Arc::new(Mutex::new(Shared {
            public_key: key.to_public_key(),
            token_uri,
            issued: Vec::new(),
            token_requests: 0,
            received: Vec::new(),
            script: VecDeque::new(),
        }));
        let app = Router::new()
            .route("/token", post(token))
            .route("/v1/projects/{project}/{method}", post(send))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            service_account,
            shared,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn script(&self, replies: &[FcmReply]) {
        self.shared
            .lock()
            .expect("lock")
            .script
            .extend(replies.iter().cloned());
    }

    pub fn received(&self) -> Vec<FcmDelivery> {
        self.shared.lock().expect("lock").received.clone()
    }

    pub fn token_requests(&self) -> usize {
        self.shared.lock().expect("lock").token_requests
    }

    pub async fn wait_for(&self, n: usize) -> Vec<FcmDelivery> {
        for _ in 0..750 {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("expected {n} FCM requests, got {:?}", self.received());
    }

    pub fn stop(self) {
        self.task.abort();
    }
}
