//! A Shared Signals transmitter's poll endpoint (RFC 8936): hands out queued SETs until
//! they are acknowledged or reported in `setErrs`, and requires a bearer token.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

#[derive(Default)]
struct Shared {
    token: String,
    /// Delivered or not yet, but neither acknowledged nor refused.
    outstanding: BTreeMap<String, String>,
    acked: Vec<String>,
    /// jti → the receiver's `{"err", "description"}`.
    errors: BTreeMap<String, Value>,
    polls: usize,
    unauthorized: usize,
}

pub struct FakePollTransmitter {
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    task: tokio::task::JoinHandle<()>,
}

async fn poll(
    State(shared): State<Arc<Mutex<Shared>>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let mut s = shared.lock().expect("lock");
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer != Some(s.token.as_str()) {
        s.unauthorized += 1;
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let Ok(request) = serde_json::from_str::<Value>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    s.polls += 1;
    for jti in request["ack"].as_array().into_iter().flatten() {
        let jti = jti.as_str().unwrap_or_default().to_owned();
        s.outstanding.remove(&jti);
        s.acked.push(jti);
    }
    if let Some(errs) = request["setErrs"].as_object() {
        for (jti, err) in errs {
            s.outstanding.remove(jti);
            s.errors.insert(jti.clone(), err.clone());
        }
    }
    let max = request["maxEvents"].as_u64().unwrap_or(u64::MAX);
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    let sets: BTreeMap<&String, &String> = s.outstanding.iter().take(max).collect();
    let more = s.outstanding.len() > sets.len();
    Json(json!({ "sets": sets, "moreAvailable": more })).into_response()
}

impl FakePollTransmitter {
    pub async fn start(token: &str) -> Self {
        let shared = Arc::new(Mutex::new(Shared {
            token: token.to_owned(),
            ..Shared::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = Router::new()
            .route("/poll", post(poll))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}/poll", self.addr)
    }

    /// Queues `set` under `jti` for the next poll.
    pub fn queue(&self, jti: &str, set: &str) {
        let mut s = self.shared.lock().expect("lock");
        s.outstanding.insert(jti.to_owned(), set.to_owned());
    }

    /// How often `jti` was acknowledged.
    pub fn acks_of(&self, jti: &str) -> usize {
        let s = self.shared.lock().expect("lock");
        s.acked.iter().filter(|a| *a == jti).count()
    }

    pub fn error_for(&self, jti: &str) -> Option<Value> {
        self.shared.lock().expect("lock").errors.get(jti).cloned()
    }

    pub fn unauthorized(&self) -> usize {
        self.shared.lock().expect("lock").unauthorized
    }

    /// Waits (up to 10 s) until `jti` was acknowledged or refused.
    pub async fn wait_answered(&self, jti: &str) {
        self.wait(jti, "acknowledged or refused", |s| {
            s.acked.iter().any(|a| a == jti) || s.errors.contains_key(jti)
        })
        .await;
    }

    /// Waits (up to 10 s) until `jti` was acknowledged `times` times.
    pub async fn wait_acks(&self, jti: &str, times: usize) {
        self.wait(jti, &format!("acknowledged {times} times"), |s| {
            s.acked.iter().filter(|a| *a == jti).count() >= times
        })
        .await;
    }

    async fn wait(&self, jti: &str, what: &str, done: impl Fn(&Shared) -> bool) {
        for _ in 0..200 {
            if done(&self.shared.lock().expect("lock")) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("SET {jti} was not {what} in 10 s");
    }
}

impl Drop for FakePollTransmitter {
    fn drop(&mut self) {
        self.task.abort();
    }
}
