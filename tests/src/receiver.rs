//! A local HTTP server standing in for an agent's `client_notification_endpoint`: records
//! every callback (bearer token and JSON body) and answers with scripted status codes.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Callback {
    pub bearer: Option<String>,
    pub body: Value,
}

#[derive(Default)]
struct Shared {
    received: Vec<Callback>,
    /// Statuses to answer with, in order; 204 once exhausted.
    script: VecDeque<u16>,
}

pub struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    task: tokio::task::JoinHandle<()>,
}

async fn record(
    State(shared): State<Arc<Mutex<Shared>>>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let mut s = shared.lock().expect("lock");
    let status = s.script.pop_front().unwrap_or(204);
    s.received.push(Callback {
        bearer,
        body: serde_json::from_str(&body).unwrap_or(Value::String(body)),
    });
    StatusCode::from_u16(status).unwrap_or(StatusCode::NO_CONTENT)
}

impl Receiver {
    /// Listens on `addr` (port 0 for any) and answers with `script` first.
    pub async fn start(addr: SocketAddr, script: &[u16]) -> Self {
        let shared = Arc::new(Mutex::new(Shared {
            received: Vec::new(),
            script: script.iter().copied().collect(),
        }));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("addr");
        let app = Router::new()
            .route("/cb", post(record))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}/cb", self.addr)
    }

    pub fn received(&self) -> Vec<Callback> {
        self.shared.lock().expect("lock").received.clone()
    }

    /// Waits until `n` callbacks arrived (or fails after 10 s).
    pub async fn wait_for(&self, n: usize) -> Vec<Callback> {
        for _ in 0..500 {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("expected {n} callbacks, got {:?}", self.received());
    }

    pub fn stop(self) {
        self.task.abort();
    }
}
