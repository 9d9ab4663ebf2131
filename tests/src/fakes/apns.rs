//! A local Apple Push Notification service: HTTP/2 over TLS (ALPN `h2`, a certificate from
//! a test CA made per run), `POST /3/device/{token}`. It checks what APNs checks — the
//! provider token's ES256 signature with the team's key, its `kid`, `iss` and age, and the
//! `apns-*` headers — answers 403 `InvalidProviderToken` when they are wrong, and can be
//! told to answer with APNs' real error bodies.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use countersign_jose::{Jwk, UnverifiedJws};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use serde_json::{Value, json};

/// An answer APNs can give.
#[derive(Debug, Clone)]
pub enum ApnsReply {
    Ok,
    /// Status and `reason`, with an optional `Retry-After` (seconds).
    Error(u16, &'static str, Option<u64>),
}

/// A notification as APNs received it.
#[derive(Debug, Clone)]
pub struct ApnsDelivery {
    pub token: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    pub at: std::time::Instant,
    /// What was answered (200, or the scripted error).
    pub status: u16,
}

impl ApnsDelivery {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Shared {
    team_id: String,
    key_id: String,
    topic: String,
    team_key: Jwk,
    received: Vec<ApnsDelivery>,
    script: VecDeque<ApnsReply>,
    /// Provider tokens seen, to check they are reused.
    tokens: Vec<String>,
}

pub struct FakeApns {
    pub addr: SocketAddr,
    /// The test CA's certificate (PEM file), to trust as `push.apns.ca_file`.
    pub ca_file: PathBuf,
    shared: Arc<Mutex<Shared>>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

fn error(status: u16, reason: &str, retry_after: Option<u64>) -> Response {
    let mut body = json!({ "reason": reason });
    if status == 410 {
        body["timestamp"] = json!(1_700_000_000_000i64);
    }
    let mut response = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        axum::Json(body),
    )
        .into_response();
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert("retry-after", secs.to_string().parse().expect("header"));
    }
    response
}

/// What is wrong with a request, as APNs would say it.
fn check(shared: &Shared, headers: &HeaderMap, body: &Value) -> Option<(u16, &'static str)> {
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let Some(token) = get("authorization").and_then(|a| a.strip_prefix("bearer ")) else {
        return Some((403, "MissingProviderToken"));
    };
    let Ok(jws) = UnverifiedJws::parse(token) else {
        return Some((403, "InvalidProviderToken"));
    };
    if jws.header.kid.as_deref() != Some(shared.key_id.as_str())
        || jws.verify_jwk(&shared.team_key).is_err()
    {
        return Some((403, "InvalidProviderToken"));
    }
    let Ok(claims) = jws.insecure_claims::<Value>() else {
        return Some((403, "InvalidProviderToken"));
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if claims["iss"] != shared.team_id {
        return Some((403, "InvalidProviderToken"));
    }
    match claims["iat"].as_i64() {
        Some(iat) if now - iat < 3600 && iat - now < 60 => {}
        _ => return Some((403, "ExpiredProviderToken")),
    }
    if get("apns-topic") != Some(shared.topic.as_str()) {
        return Some((400, "BadTopic"));
    }
    if get("apns-push-type") != Some("alert") {
        return Some((400, "InvalidPushType"));
    }
    if get("apns-priority") != Some("10") {
        return Some((400, "BadPriority"));
    }
    if get("apns-expiration")
        .and_then(|e| e.parse::<i64>().ok())
        .is_none()
    {
        return Some((400, "BadExpirationDate"));
    }
    if get("apns-collapse-id").is_none_or(|c| c.len() > 64) {
        return Some((400, "BadCollapseId"));
    }
    if !body["aps"]["alert"].is_object() {
        return Some((400, "PayloadEmpty"));
    }
    None
}

async fn push(
    State(shared): State<Arc<Mutex<Shared>>>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let mut s = shared.lock().expect("lock");
    let reply = match check(&s, &headers, &body) {
        Some((status, reason)) => ApnsReply::Error(status, reason, None),
        None => s.script.pop_front().unwrap_or(ApnsReply::Ok),
    };
    if let Some(t) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.strip_prefix("bearer "))
        && !s.tokens.iter().any(|x| x == t)
    {
        s.tokens.push(t.to_owned());
    }
    let status = match &reply {
        ApnsReply::Ok => 200,
        ApnsReply::Error(status, ..) => *status,
    };
    s.received.push(ApnsDelivery {
        token,
        headers: headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        body,
        at: std::time::Instant::now(),
        status,
    });
    match reply {
        ApnsReply::Ok => {
            let mut ok = StatusCode::OK.into_response();
            ok.headers_mut().insert(
                "apns-id",
                countersign_jose::random_b64url(12).parse().expect("header"),
            );
            ok
        }
        ApnsReply::Error(status, reason, after) => error(status, reason, after),
    }
}

impl FakeApns {
    /// Listens on `addr` (port 0 for any) for a team whose provider tokens are signed by
    /// the key `team_key` (public JWK) with id `key_id`, for the app `topic`.
    pub async fn start(
        addr: SocketAddr,
        team_id: &str,
        key_id: &str,
        team_key: Jwk,
        topic: &str,
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Countersign test CA");
        let ca = ca_params.self_signed(&ca_key).expect("CA cert");
        let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
        let leaf_params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("leaf params");
        let leaf = leaf_params
            .signed_by(&leaf_key, &ca, &ca_key)
            .expect("leaf cert");
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).expect("write CA");

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .expect("TLS config");
        tls.alpn_protocols = vec![b"h2".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));

        let shared = Arc::new(Mutex::new(Shared {
            team_id: team_id.to_owned(),
            key_id: key_id.to_owned(),
            topic: topic.to_owned(),
            team_key,
            received: Vec::new(),
            script: VecDeque::new(),
            tokens: Vec::new(),
        }));
        let app = Router::new()
            .route("/3/device/{token}", post(push))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("bind fake APNs");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                // As a real server would: small HTTP/2 frames must not wait for Nagle.
                let _ = tcp.set_nodelay(true);
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    // APNs speaks HTTP/2 only.
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
                        .await;
                });
            }
        });
        Self {
            addr,
            ca_file,
            shared,
            task,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    /// Answers the next requests with `replies`, in order (then 200).
    pub fn script(&self, replies: &[ApnsReply]) {
        self.shared
            .lock()
            .expect("lock")
            .script
            .extend(replies.iter().cloned());
    }

    pub fn received(&self) -> Vec<ApnsDelivery> {
        self.shared.lock().expect("lock").received.clone()
    }

    /// Distinct provider tokens presented so far.
    pub fn provider_tokens(&self) -> usize {
        self.shared.lock().expect("lock").tokens.len()
    }

    /// Waits until `n` requests arrived (or fails after 15 s).
    pub async fn wait_for(&self, n: usize) -> Vec<ApnsDelivery> {
        for _ in 0..750 {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("expected {n} APNs requests, got {:?}", self.received());
    }

    pub fn stop(self) {
        self.task.abort();
    }
}
